"""Chapter exercises, one module per chapter; `pytest autograder/` grades them."""
