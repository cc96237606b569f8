"""Loss modules, registered under kind ``loss``."""
