"""Model definitions for test_zoo.py, written the way their upstream sources
write them (module structure, forward code, masks and activations), so that
the frontend is tested on code it was not written for."""
