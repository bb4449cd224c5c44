import pytest


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Writes the files given as ``name=text`` (``a__b.py`` is ``a/b.py``) in a fresh folder, the
    current one; returns it."""
    monkeypatch.chdir(tmp_path)

    def make(**files: str | bytes):
        for name, content in files.items():
            path = tmp_path / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return tmp_path

    return make
