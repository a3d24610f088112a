"""Lane lines: from a lane mask to lane-line instances (`extract`), their geometry on the road
(`geometry`), steering from them (`control`), and the lane metrics and label files of the field
(`metrics`, `formats`). docs/architecture.md, the layout."""
