"""Step1X-Edit: encoder, connector, DiT, VAE, sampling pipeline, trainer and their CLIs.

Importing the package silences the known, harmless start-up messages of the libraries it loads (torchao's
and torch's, see model/quiet.py) before any of them is imported; all other messages still show.
"""

from model.quiet import silence_known_messages

silence_known_messages()
