"""Small real workflows used by the README and the tests."""
