"""Convolutional autoencoders (plain or variational) on grey or colour images, and tools to explore their
latent space.

- :func:`~latentatlas.images.io.read_images` reads Fashion-MNIST, IDX, ``.npz`` files and folders of pictures
  (grey ``N×H×W`` or colour ``N×3×H×W``; ``image_size`` resizes and centre-crops; ``cache`` memory-maps);
- :class:`~latentatlas.images.autoencoder.ConvAutoencoder` is the estimator and the one home of every
  parameter (``fit`` / ``transform`` / ``inverse_transform`` / ``interpolate`` / ``traverse`` / ``sample``
  (VAE) / ``save`` / ``from_checkpoint``); it trains on the CPU, CUDA (mixed precision, optional
  ``torch.compile``) or Apple's MPS;
- :func:`~latentatlas.images.latent.embed` maps codes to 2-D (PCA, t-SNE, UMAP);
- :mod:`~latentatlas.images.workflow` writes whole runs (what ``latentatlas images …`` and the demo call),
  and :func:`~latentatlas.images.workflow.compare_run` a plain autoencoder and a VAE with the report comparing
  them.

Importing this package loads nothing heavy (torch is imported by the modules above).
"""
