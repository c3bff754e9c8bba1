from notification.models import Base
from tools.migrations import run_env

run_env(Base.metadata, "notification")
