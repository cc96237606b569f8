"""Plain nn.Modules (never import Lightning here), registered under kind ``model``."""
