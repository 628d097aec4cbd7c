"""`python -m seldon_serving ...`: the `seldon` command, for an interpreter that has no `seldon`
script on its PATH (a `process` node's child started with another virtualenv's python)."""

from seldon_serving.cli.main import main

if __name__ == "__main__":
    main()
