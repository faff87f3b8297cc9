"""What tests share: helper modules, never test modules (pytest collects nothing here)."""
