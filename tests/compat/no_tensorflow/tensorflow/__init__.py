# On PYTHONPATH of a seldon-core reference server that needs no tftensor: seldon-core imports
# TensorFlow whenever it can, which costs seconds and a gigabyte per server.
raise ImportError("tensorflow is hidden from this seldon-core reference server")
