"""Convolutional autoencoder on images and tools to explore its latent space."""
