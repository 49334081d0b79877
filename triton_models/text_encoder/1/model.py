from libs.triton.ort_model import TritonPythonModel
