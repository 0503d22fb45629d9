"""Models we host ourselves: the embedded llama.cpp engine (`llamacpp.py`) and its parts."""
