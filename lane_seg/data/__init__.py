"""Data on disk: the dataset contract (`dataset`), the labelled real sources and their lane
labels (`real_sources`, `real_lanes`), unlabelled frames (`unlabelled`) and the importers of
other formats (`importers`). docs/architecture.md, contract 1."""
