"""The inference core: plain Python in and out (texts and options in, predictions, explanations and model
facts out). Every transport is a thin adapter over it; it knows nothing of gRPC or HTTP."""
