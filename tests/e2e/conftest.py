from s3_support import bucket, clips, s3  # noqa: F401  (fixtures of the tests/e2e/test_s3_*.py files)
