from tap_hotjar.cli import main

main()
