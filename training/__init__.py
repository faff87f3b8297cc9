"""Fine-tuning and evaluation of BERT-family sentiment classifiers, and the built-in model recipe."""
