"""Training driver: strategy selection, train loop, checkpoints, evaluation
inside training and continuous evaluation (``scripts/model_main_tf2.py``)."""
