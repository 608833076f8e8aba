"""ADE20K SceneParsing (ADEChallengeData2016), 150 classes; see `ade20k_dataset_builder`."""
