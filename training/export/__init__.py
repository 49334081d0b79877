"""Export: PyTorch -> ONNX (+ parity), TensorRT engine builder and offline checks, Triton config generation."""
