from wfm_cli.app import main

main()
