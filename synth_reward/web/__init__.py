"""The review page (`synth-reward review RUN`): a local web page over one run's feedback session.

It imports the agent (synth_reward.agent); nothing in the agent imports it. See app.py for the routes and
docs/feedback.md for the session model it shares with the terminal.
"""
