"""Video data: decoding (`video`), frame sampling (`samplers`), model input (`transforms`), dataset readers."""
