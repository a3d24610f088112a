"""`lane-seg demo`: the shipped model in the real ROS 2 node, live figures, an overlay video."""
