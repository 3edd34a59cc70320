"""Pretrained BERT (keras-hub) inside tf_keras: the encoder, its presets, fine-tuning modes,
tokenizing in tf.data and the XLA-compiled encoder of exports. Submodules are imported on use."""
