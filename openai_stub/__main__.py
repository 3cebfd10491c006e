from openai_stub.server import main

main()
