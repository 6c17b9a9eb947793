"""`viva.dotted.import_dotted`: the one loader behind the plug-in points that take ``pkg.module:Attr``."""

import pytest

from viva.dotted import MissingAttribute, import_dotted


def test_imports_nested_attributes():
    import os.path

    assert import_dotted("os:path.join") is os.path.join


@pytest.mark.parametrize("target, error", [
    ("os.path", ValueError), ("os:", ValueError), ("no_such_module_xyz:f", ImportError), ("os:nope", MissingAttribute),
])
def test_each_failure_has_its_own_exception(target, error):
    with pytest.raises(error):
        import_dotted(target)
