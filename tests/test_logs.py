import logging

from emokd.logs import file_log


def test_file_log_detaches_after_the_job(tmp_path):
    log = logging.getLogger("emokd.test")
    with file_log(tmp_path / "a.log"):
        log.info("first job")
    with file_log(tmp_path / "b.log"):
        log.info("second job")
    log.info("after both")
    assert "first job" in (tmp_path / "a.log").read_text()
    assert "second job" not in (tmp_path / "a.log").read_text()
    assert "second job" in (tmp_path / "b.log").read_text()
    assert "after both" not in (tmp_path / "b.log").read_text()
