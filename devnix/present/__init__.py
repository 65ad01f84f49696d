"""What the CLI shows: every command's result as text, one module per command.

Commands return result objects and print nothing; ``devnix.cli`` prints what these functions return
(``--json`` prints the result's ``to_json()`` instead). Only bootstrap's progress bars draw on the
terminal themselves, live, while the run goes on. rich is imported inside the functions that draw, so
importing this package costs nothing at start-up.
"""
