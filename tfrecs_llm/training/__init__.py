"""Training: the two-tower model (``retrieval``), the ranking head (``ranker``), updates without
retraining from scratch (``updates``), ``tf.distribute`` strategies (``distribute``) and the model
directory (``persistence``). Submodules are imported on use."""
