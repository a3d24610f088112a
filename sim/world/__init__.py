"""The built-in planar simulator: roads, scenes, the camera renderer, the vehicle, collection."""
