from rlspoof.cli import main

main()
