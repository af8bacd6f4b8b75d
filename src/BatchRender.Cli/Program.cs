Console.WriteLine("batchrender: under construction");
