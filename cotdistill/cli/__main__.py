"""`python -m cotdistill.cli ...`: the science commands alone, without the job system's."""

from cotdistill.cli import main

main()
