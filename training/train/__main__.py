from training.train.pipeline import main

raise SystemExit(main())
