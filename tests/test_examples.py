"""The examples in the docstrings of the root API run and print what they say."""

import doctest

import pytest

import htmp_infer


@pytest.mark.parametrize("name", sorted(htmp_infer._LAZY))
def test_docstring_examples(name):
    obj = getattr(htmp_infer, name)
    tests = doctest.DocTestFinder(recurse=False).find(
        obj, name, globs={"hi": htmp_infer}
    )
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
