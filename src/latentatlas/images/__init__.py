"""Convolutional autoencoders (plain or variational) on grey or colour images, and tools to explore their
latent space.

- :func:`~latentatlas.images.io.read_images` reads Fashion-MNIST, IDX, ``.npz`` files and folders of pictures
  (grey ``N×H×W`` or colour ``N×3×H×W``; ``image_size`` resizes and centre-crops; ``cache`` memory-maps);
- :class:`~latentatlas.images.autoencoder.ConvAutoencoder` is the estimator (``fit`` / ``transform`` /
  ``inverse_transform`` / ``interpolate`` / ``traverse`` / ``sample`` (VAE) / ``save`` / ``load``);
- :func:`~latentatlas.images.latent.embed` maps codes to 2-D (PCA, t-SNE, UMAP);
- :mod:`~latentatlas.images.workflow` writes whole runs (what ``latentatlas images …`` and the demo call).

Importing this package loads nothing heavy (torch is imported by the modules above).
"""
