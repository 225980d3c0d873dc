"""Studio: the Backend-for-Frontend gateway of the Sentinel AI platform."""
