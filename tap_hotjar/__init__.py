"""tap-hotjar: a Singer tap for Hotjar surveys, built on singer-sdk."""
