"""facescan trainer: fit, evaluate and export the Keras detector (needs the [train] extra)."""
