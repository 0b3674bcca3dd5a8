# Installed as lredit.kernels. Found as the bare `kernels` only when the checkout root is on
# sys.path (`python -m` or `python -c` run there), where it would shadow Hugging Face's `kernels`
# package, which transformers imports by that name: say so instead of failing inside transformers.
if __name__ == "kernels":
    raise ImportError(
        "the lredit checkout's kernels/ folder was imported as the bare module `kernels` (it shadows "
        "Hugging Face's kernels package): run from outside the checkout root, use the lr-* commands, "
        "or start Python with -P"
    )
