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


def test_native_stderr_goes_to_the_log_not_the_terminal(capfd):
    import ctypes

    from emokd.logs import native_stderr_to_log

    libc = ctypes.CDLL(None)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    log = logging.getLogger("emokd.test.native")
    log.addHandler(Keep())
    log.setLevel(logging.INFO)
    with native_stderr_to_log(log):
        libc.write(2, b"[mov,mp4 @ 0x1] partial file\n", 29)     # as libav does: fd 2, no Python
    libc.write(2, b"after\n", 6)
    assert records == ["[mov,mp4 @ 0x1] partial file"]
    err = capfd.readouterr().err
    assert "partial file" not in err and "after" in err


def test_dask_housekeeping_and_libav_stay_off_the_console(capsys):
    from emokd.logs import setup_logging

    setup_logging(verbose=False, quiet=False)
    logging.getLogger("distributed.nanny").warning("Worker process still alive after 4.0 seconds, killing")
    logging.getLogger("emokd.libav").warning("[mov] partial file")
    logging.getLogger("emokd.extract").warning("a warning of ours")
    logging.getLogger("distributed.core").error("a real error")
    logging.getLogger("asyncio").error("Unclosed client session")     # aiohttp, when an S3 client is collected
    err = capsys.readouterr().err
    assert "still alive" not in err and "partial file" not in err and "Unclosed" not in err
    assert "a warning of ours" in err and "a real error" in err
    setup_logging(verbose=True)
    logging.getLogger("distributed.nanny").warning("shown with -v")
    assert "shown with -v" in capsys.readouterr().err
    setup_logging(verbose=False)
