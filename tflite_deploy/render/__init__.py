"""All terminal output: Rich tables and progress for what the API returns; nothing else prints.

``verbs`` renders the model commands (convert, eval, bench, inspect, ...), ``store`` the results
store's (history, compare), ``farm`` the farm's.
"""
