"""service/llm"""
