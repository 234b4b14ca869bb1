"""Networks: the ResNet backbone (`resnet`) and the annotator head (`annotator`), in Flax NNX."""
