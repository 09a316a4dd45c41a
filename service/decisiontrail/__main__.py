from decisiontrail.cli import main

main()
