"""HTTP surfaces: each turns its wire format into canonical calls and back."""
