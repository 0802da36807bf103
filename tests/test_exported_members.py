"""The public API is the sorted __all__ of the package, and every name in it exists."""

import taxbridge


def test_all_is_sorted_and_importable() -> None:
    assert taxbridge.__all__ == sorted(taxbridge.__all__)
    for name in taxbridge.__all__:
        assert hasattr(taxbridge, name), name
