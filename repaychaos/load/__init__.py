"""The load side: the repaying users on Locust, the load runner, and the join of what
they saw with what the service knows."""
