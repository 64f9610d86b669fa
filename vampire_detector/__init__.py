"""Support library of the course "Deploying PyTorch to Production": Dracula's vampire detector."""

__version__ = "0.1.0"
