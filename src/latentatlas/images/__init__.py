"""Convolutional autoencoder on images and tools to explore its latent space.

- :func:`~latentatlas.images.io.read_images` reads Fashion-MNIST, IDX, ``.npz`` files and picture folders;
- :class:`~latentatlas.images.autoencoder.ConvAutoencoder` is the estimator (``fit`` / ``transform`` /
  ``inverse_transform`` / ``interpolate`` / ``save`` / ``load``);
- :func:`~latentatlas.images.latent.embed` maps codes to 2-D (PCA, t-SNE, UMAP);
- :mod:`~latentatlas.images.workflow` writes whole runs (what ``latentatlas images …`` and the demo call).

Importing this package loads nothing heavy (torch is imported by the modules above).
"""
