"""Reading results back for people: compare verdicts, plots and the HTML/Markdown report.

Nothing here imports TensorFlow; matplotlib is imported only when a plot is drawn.
"""
